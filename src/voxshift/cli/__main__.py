from voxshift.cli.main import main

main()
