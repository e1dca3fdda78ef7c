from recbole_paragon.sweep.sweep import main

main()
