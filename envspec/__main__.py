from envspec.entry import main

main()
