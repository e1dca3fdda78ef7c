import re

from setuptools import find_packages, setup

#: The version is written once, in recbole_paragon/__init__.py.
VERSION = re.search(r'^__version__ = "([^"]+)"', open("recbole_paragon/__init__.py", encoding="utf-8").read(),
                    re.M).group(1)

INSTALL_REQUIRES = [
    "torch==2.13.0",
    "recbole==1.2.1",
    "ray[tune]==2.6.3",
    "numpy<2",
    "pandas<3",
    "pyarrow<17",
    "setuptools<81",
    "scipy",
    "pymoo",
    "matplotlib",
    "tqdm",
]
#: The HTTP service and the preference console (recbole-paragon serve).
#: swagger-ui-py ships the Swagger UI files /docs serves (no CDN); faiss-cpu is the item index of large catalogues
#: (picked over usearch and hnswlib by benchmarks/ann_libraries.py; 1.8.0.post1 is built for numpy 1.x).
SERVE_REQUIRES = ["fastapi==0.163.2", "uvicorn==0.54.0", "httptools==0.9.0", "uvloop==0.23.0",  # C HTTP parser, loop
                  "swagger-ui-py==25.7.1", "faiss-cpu==1.8.0.post1"]
#: The test suite: the service's test client, the fuzzer, the console's browser test (Chromium itself comes from
#: the system: apt-get install chromium).
TEST_REQUIRES = ["pytest>=7", "httpx==0.28.1", "hypothesis==6.170.15", "playwright==1.65.2", *SERVE_REQUIRES]
#: The documentation site (make docs): MkDocs, the Material theme, the API reference from the docstrings.
DOCS_REQUIRES = ["mkdocs==1.6.1", "mkdocs-material==9.8.2", "pymdown-extensions==13.1.2", "mkdocstrings==1.0.8",
                 "mkdocstrings-python==2.0.11", "mkdocs-autorefs==1.4.5", "griffelib==2.4.1"]

setup(
    name="recbole-paragon",
    version=VERSION,
    description="Controllable sequential recommendation for RecBole: diffusion-generated adapters (Paragon)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    # the yaml lives in the top-level properties/ (the only copy); an install puts it at recbole_paragon/properties
    packages=find_packages(exclude=["tests", "tests.*", "benchmarks"]) + ["recbole_paragon.properties"],
    package_dir={"recbole_paragon.properties": "properties"},
    package_data={"recbole_paragon": ["service/static/*"],
                  "recbole_paragon.properties": ["*.yaml", "*/*.yaml", "*.test"]},
    py_modules=["run_recbole_paragon"],
    install_requires=INSTALL_REQUIRES,
    extras_require={"serve": SERVE_REQUIRES, "test": TEST_REQUIRES, "docs": DOCS_REQUIRES},
    entry_points={"console_scripts": ["recbole-paragon=run_recbole_paragon:main"]},
)
