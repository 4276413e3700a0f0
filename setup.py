"""Maps the five code folders onto subpackages of one import package, ``codekiln``.

Nothing named ``stream``, ``train`` or ``eval`` lands top-level in site-packages: each folder
(and every package below it) is installed as ``codekiln.<folder>...``.
"""

from setuptools import Extension, find_packages, setup

COMPONENTS = ("stream", "sandbox", "synth", "train", "eval")

packages = ["codekiln"]
package_dir = {"codekiln": "codekiln"}
for component in COMPONENTS:
    for sub in ["", *find_packages(component)]:
        name = f"codekiln.{component}" + (f".{sub}" if sub else "")
        packages.append(name)
        package_dir[name] = component + ("/" + sub.replace(".", "/") if sub else "")

# The C loops of the heuristic filters and MinHash shingling. Optional: without a C compiler
# the install goes on and codekiln runs the numpy implementations of the same functions.
native = Extension(
    "codekiln.stream._native",
    sources=["stream/_native.c"],
    extra_compile_args=["-O2"],
    optional=True,
)

setup(packages=packages, package_dir=package_dir, ext_modules=[native])
