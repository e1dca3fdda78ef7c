"""recbole-paragon: controllable sequential recommendation for RecBole (Paragon, arXiv 2410.10639)."""
import warnings

warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

from recbole_paragon import compat  # noqa: E402,F401  (must run before RecBole is used)
from recbole_paragon import metrics  # noqa: E402,F401  (registers the metrics with RecBole's evaluator)
from recbole_paragon.config import Config  # noqa: E402
from recbole_paragon.quick_start import objective_function, run_recbole_paragon  # noqa: E402
from recbole_paragon.serving import ParagonRecommender, generate, generate_batch  # noqa: E402
from recbole_paragon.registry import get_model, get_trainer  # noqa: E402
from recbole_paragon.entry_points import register_with_recbole  # noqa: E402

register_with_recbole()  # RecBole's own get_model / get_trainer / run_recbole know Paragon<Backbone> from here on

__version__ = "0.2.0"  # the one place the version is written (setup.py and the service read it)
__all__ = ["Config", "ParagonRecommender", "generate", "generate_batch", "get_model", "get_trainer", "objective_function", "run_recbole_paragon",
           "__version__"]
