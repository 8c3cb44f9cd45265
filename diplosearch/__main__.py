from diplosearch.cli import main

main()
