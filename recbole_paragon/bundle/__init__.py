"""Serving bundles: a run exported as JSON and plain tensors that serves without the raw data or any pickle."""
from recbole_paragon.bundle.catalogue import Catalogue, UnknownIdError
from recbole_paragon.bundle.export import export_bundle
from recbole_paragon.bundle.files import BUNDLE_DIR, bundle_directory
from recbole_paragon.bundle.load import Bundle, load_bundle

__all__ = ["BUNDLE_DIR", "Bundle", "Catalogue", "UnknownIdError", "bundle_directory", "export_bundle", "load_bundle"]
