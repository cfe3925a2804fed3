from scratch_cli.main import main

main()
