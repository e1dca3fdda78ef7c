"""Write ``tests/test_data/ml-tiny``: a slice of RecBole's bundled ml-100k (users 1..300, last 30 interactions each).

Run once; the output is committed so tests never depend on this script.
"""
import os

import pandas as pd
import recbole

SOURCE = os.path.join(os.path.dirname(recbole.__file__), "dataset_example", "ml-100k")
TARGET = os.path.join(os.path.dirname(__file__), "test_data", "ml-tiny")


def main(max_user: int = 300, per_user: int = 30) -> None:
    os.makedirs(TARGET, exist_ok=True)
    inter = pd.read_csv(os.path.join(SOURCE, "ml-100k.inter"), sep="\t")
    inter = inter[inter["user_id:token"] <= max_user]
    inter = inter.sort_values(["user_id:token", "timestamp:float"]).groupby("user_id:token").tail(per_user)
    items = pd.read_csv(os.path.join(SOURCE, "ml-100k.item"), sep="\t")
    items = items[items["item_id:token"].isin(inter["item_id:token"])][["item_id:token", "class:token_seq"]]
    users = pd.read_csv(os.path.join(SOURCE, "ml-100k.user"), sep="\t")
    users = users[users["user_id:token"] <= max_user][["user_id:token", "gender:token"]]
    inter.to_csv(os.path.join(TARGET, "ml-tiny.inter"), sep="\t", index=False)
    items.to_csv(os.path.join(TARGET, "ml-tiny.item"), sep="\t", index=False)
    users.to_csv(os.path.join(TARGET, "ml-tiny.user"), sep="\t", index=False)


if __name__ == "__main__":
    main()
