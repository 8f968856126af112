from praisondb.cli import main

main()
