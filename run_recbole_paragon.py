"""RecBole-style command line for recbole-paragon.

    python run_recbole_paragon.py --model=ParagonSASRec --dataset=ml-100k [--config_files=a.yaml,b.yaml] [--key=value]

Any ``--key=value`` RecBole understands works here too; ``--model=SASRec`` (no prefix) runs plain RecBole.

    python run_recbole_paragon.py --sweep --params_file=properties/hyper_example.test [--num_samples=8] [--key=value]

runs a hyper-parameter sweep on Ray Tune instead (options: ``python -m recbole_paragon.sweep --help``).

    python run_recbole_paragon.py --stage=compare [--compare_models="[Pop,SASRec,NARM]"] [--compare_seeds=3]
        [--compare_config_files="{'SASRec': 'saved/sweep-SASRec-ml-100k/best.yaml'}"] [--eval_args="{'mode': 'uni100'}"]

trains RecBole's own models on the run's data, split and protocol (3 seeds, on Ray when installed) and puts them
beside Paragon's fronts in the run's report (``report.md``, ``compare.png``).

    python run_recbole_paragon.py --stage=serve [--model=ParagonSASRec --dataset=ml-100k | --run_dir=DIR] [--port=8000]
    recbole-paragon serve --run_dir=saved/ParagonSASRec-ml-100k

serves the run's exported bundle over HTTP (console at ``/``, OpenAPI at ``/docs``); no dataset is loaded.
"""
import argparse
import sys

from recbole_paragon import run_recbole_paragon


def wants_service(arguments) -> bool:
    """``serve ...`` (the console script's sub-command) or ``--stage=serve``."""
    return bool(arguments) and (arguments[0] == "serve" or "--stage=serve" in arguments)


def main() -> None:
    arguments = sys.argv[1:]
    if wants_service(arguments):
        from recbole_paragon.service import main as serve_main

        serve_main([arg for arg in arguments if arg != "serve"])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", "-m", type=str, default="ParagonSASRec", help="model name, e.g. ParagonSASRec")
    parser.add_argument("--dataset", "-d", type=str, default="ml-100k", help="dataset name")
    parser.add_argument("--config_files", type=str, default=None, help="comma-separated yaml files")
    parser.add_argument("--sweep", action="store_true", help="hyper-parameter sweep on Ray Tune (needs --params_file)")
    parser.add_argument("--tune", action="store_true", help=argparse.SUPPRESS)  # the old name of --sweep
    args, _ = parser.parse_known_args()  # every other --key=value is read by RecBole's Config
    if args.sweep or args.tune:
        from recbole_paragon.sweep import main as sweep_main

        if args.tune:
            print("warning: --tune was renamed --sweep; the old name goes in the next release", file=sys.stderr)
        sweep_main([arg for arg in sys.argv[1:] if arg not in ("--sweep", "--tune")])
        return
    config_files = [f for f in args.config_files.split(",") if f] if args.config_files else None
    run_recbole_paragon(model=args.model, dataset=args.dataset, config_file_list=config_files)


if __name__ == "__main__":
    main()
