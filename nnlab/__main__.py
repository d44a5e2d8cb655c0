from nnlab.cli import main

main()
