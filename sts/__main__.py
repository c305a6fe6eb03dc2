from sts.cli.main import main

main()
