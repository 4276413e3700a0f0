#!/usr/bin/env bash
# Build the codekiln application image: k8s/image/build.sh [--offline] [--tag codekiln:0.1.0]
#                                                          [--extras all] [--python python3]
#
# The build context is made on this host, so the image build itself needs no network:
#   1. the sandbox image (built if missing) saved as sandbox-image.tar;
#   2. codekiln and its dependencies as wheels, resolved by this host's pip (its index and
#      constraints decide, e.g., whether torch==2.13.0 is the CPU or the CUDA build);
#   3. `docker build` of k8s/image/Dockerfile on BASE.
# --offline uses the sandbox's debootstrapped Debian base (CPython 3.11) instead of pulling
# python:3.11-slim-bookworm.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
tag=""
extras="all"
offline=0
context="$repo/build/app-image"
while [ $# -gt 0 ]; do
  case "$1" in
    --offline) offline=1 ;;
    --tag) tag="$2"; shift ;;
    --extras) extras="$2"; shift ;;
    --python) python="$2"; shift ;;
    --context) context="$2"; shift ;;
    *) echo "build.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
version="$("$python" -c 'import importlib.metadata as m; print(m.version("codekiln"))')"
tag="${tag:-codekiln:$version}"

rm -rf "$context"
mkdir -p "$context/wheels"
cp "$here/Dockerfile" "$context/"

echo "== sandbox image"
sandbox_tag="$(codekiln-sandbox image build --if-missing | tail -n 1)"
codekiln-sandbox image save "$context/sandbox-image.tar" --tag "$sandbox_tag"

base="python:3.11-slim-bookworm"
if [ "$offline" = 1 ]; then
  base="$("$python" -c 'from codekiln.sandbox.image.build import default_recipe; print(default_recipe().base_tag)')"
  # The base's own CPython decides which releases fit (Requires-Python): bookworm's is 3.11.2.
  pyversion="$(docker run --rm --network none "$base" python3 -c 'import platform; print(platform.python_version())')"
else
  pyversion="3.11"
fi

echo "== wheels (extras: $extras, for CPython $pyversion)"
wheels="$context/wheels"
"$python" -m pip wheel --no-deps --wheel-dir "$wheels" "$repo"
# Released wheels that fit the base's CPython (Requires-Python). Packages published only as
# sdists (deepspeed, fasttext, ...) are built here, at the version installed with this Python,
# without build isolation, so that deepspeed's build imports the torch installed here instead of
# resolving one of its own; then the download is tried again. pip evaluates python_full_version
# markers against this host's interpreter, not the target's: async-timeout (redis needs it below
# CPython 3.11.3) is named so that it is there for bookworm's 3.11.2.
# pip is pinned to this host's version: unpinned, every retry walked back through pip's releases.
pip_version="$("$python" -m pip --version | cut -d' ' -f2)"
for _ in $(seq 20); do
  if "$python" -m pip download --dest "$wheels" --find-links "$wheels" --only-binary=:all: \
      --python-version "$pyversion" "codekiln[$extras]" "pip==$pip_version" async-timeout \
      2>"$context/download.err"; then
    break
  fi
  sdist="$(sed -n 's/.*No matching distribution found for \([A-Za-z0-9_.-]*\).*/\1/p' "$context/download.err" | head -n 1)"
  if [ -z "$sdist" ]; then cat "$context/download.err" >&2; exit 1; fi
  version="$("$python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$sdist")"
  echo "-- $sdist has no wheel: building $sdist==$version"
  "$python" -m pip wheel --no-deps --no-build-isolation --wheel-dir "$wheels" "$sdist==$version"
done

# The service picks its sandbox image by the recipe hash of its own sources: the tarball must be
# the image of the sources the wheel was built from.
if [ "$(codekiln-sandbox image tag)" != "$sandbox_tag" ]; then
  echo "build.sh: the sandbox sources changed during the build ($sandbox_tag is stale); run it again" >&2
  exit 1
fi
echo "== docker build $tag on $base"
docker build --build-arg "BASE=$base" --build-arg "EXTRAS=$extras" --tag "$tag" "$context"
echo "$tag"
