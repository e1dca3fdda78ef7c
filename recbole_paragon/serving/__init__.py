"""Serving: ``ParagonRecommender`` (top-K by external ids from a bundle), ``generate()`` / ``generate_batch()``."""
from recbole_paragon.serving.recommender import ParagonRecommender, Ranking
from recbole_paragon.serving.runs import generate, generate_batch, recommender

__all__ = ["ParagonRecommender", "Ranking", "generate", "generate_batch", "recommender"]
