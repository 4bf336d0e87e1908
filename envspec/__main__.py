from envspec.cli import main

main()
