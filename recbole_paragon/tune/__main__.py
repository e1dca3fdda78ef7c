from recbole_paragon.tune.sweep import main

main()
