"""The wheel carries the settings (the top-level ``properties/``, installed as ``recbole_paragon/properties``), and an
installed, non-editable copy of the package reads them from there."""
import glob
import os
import shutil
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ["setup.py", "setup.cfg", "MANIFEST.in", "README.md", "run_recbole_paragon.py", "recbole_paragon",
           "properties"]


def build_wheel(tmp_path) -> str:
    """A wheel built from a copy of the sources (the checkout gets no build/ or egg-info)."""
    source = tmp_path / "source"
    for name in SOURCES:
        path = os.path.join(ROOT, name)
        if os.path.isdir(path):
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy(path, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                    "-w", str(tmp_path / "dist")], check=True, timeout=300, capture_output=True)
    wheels = glob.glob(str(tmp_path / "dist" / "*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_the_wheel_holds_every_yaml_and_an_install_reads_them(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    properties = os.path.join(ROOT, "properties")
    expected = {"recbole_paragon/properties/" + os.path.relpath(p, properties).replace(os.sep, "/")
                for p in glob.glob(os.path.join(properties, "**", "*"), recursive=True)
                if p.endswith((".yaml", ".test"))}
    assert {"recbole_paragon/properties/overall.yaml", "recbole_paragon/properties/hyper_example.test"} <= expected
    assert any(n.startswith("recbole_paragon/properties/dataset/") for n in expected)
    assert any(n.startswith("recbole_paragon/properties/model/") for n in expected)
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert "recbole_paragon/service/static/console.html" in names and "run_recbole_paragon.py" in names

    installed = tmp_path / "site-packages"  # what pip install <wheel> lays out
    zipfile.ZipFile(wheel).extractall(installed)
    probe = ("import recbole_paragon.settings as s; print(s.__file__); print(s._properties_dir()); "
             "print(s.setting(None, 'adapter_steps'))")
    env = {**os.environ, "PYTHONPATH": str(installed)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    assert out[0].startswith(str(installed)), "the installed copy, not the checkout, was imported"
    assert out[1] == str(installed / "recbole_paragon" / "properties")
    assert out[2] == "300"
