#!/usr/bin/env bash
# Recreate the three reference environments and the reference checkouts used by run.py.
#
#   [MIRROR=https://github.com] [PYTHON=python3] benchmarks/reference_equivalence/setup_envs.sh
#
# Environments (outside the checkout, so they survive): ~/.cache/ganworks/refenv/{theano,chainer,tf}
# Checkouts: ~/.cache/ganworks/refsrc/{improved-gan,Lasagne,sngan_projection,chainer-gan-lib}
#
# The checkouts are cloned from $MIRROR/<owner>/<name> (default GitHub). Large data
# files of those repositories (mnist.npz, cifar-10-fid.npz, images) are not needed. The commits
# used for benchmarks/results/reference_equivalence.* are pinned below.
set -euo pipefail
BASE=${GANWORKS_REF_HOME:-$HOME/.cache/ganworks}
ENV=$BASE/refenv
SRC=$BASE/refsrc
PY=${PYTHON:-python3}
mkdir -p "$ENV" "$SRC"

# --- Theano + Lasagne (openai/improved-gan) -------------------------------------------------------
if [ ! -x "$ENV/theano/bin/python" ]; then
  "$PY" -m venv "$ENV/theano"
  "$ENV/theano/bin/pip" install "setuptools<70" wheel
  "$ENV/theano/bin/pip" install --no-build-isolation theano==1.0.5 numpy==1.23.5 scipy==1.10.1
fi
# --- Chainer (pfnet-research/sngan_projection, chainer-gan-lib) -----------------------------------
if [ ! -x "$ENV/chainer/bin/python" ]; then
  "$PY" -m venv "$ENV/chainer"
  "$ENV/chainer/bin/pip" install "setuptools<70" wheel
  "$ENV/chainer/bin/pip" install --no-build-isolation chainer==7.8.1 "numpy<2"
fi

# --- TensorFlow, run through tf.compat.v1 (openai/improved-gan imagenet/) ---------------------------
if [ ! -x "$ENV/tf/bin/python" ]; then
  "$PY" -m venv "$ENV/tf"
  "$ENV/tf/bin/pip" install tensorflow-cpu==2.21.0 numpy==2.4.6
fi

# --- reference checkouts (pinned) -----------------------------------------------------------------
fetch() {  # owner/name dest commit
  local repo=$1 dest=$2 commit=$3
  [ -d "$SRC/$dest" ] && return 0
  local url=${MIRROR:-https://github.com}/$repo
  git clone --quiet "$url" "$SRC/$dest.tmp"
  git -C "$SRC/$dest.tmp" -c advice.detachedHead=false checkout --quiet "$commit"
  mv "$SRC/$dest.tmp" "$SRC/$dest"
}
fetch openai/improved-gan improved-gan 4f5d1ec5c16a7eceb206f42bfc652693601e1d5c
fetch Lasagne/Lasagne Lasagne 5d3c63cb315c50b1cbd27a6bc8664b406f34dd99
fetch pfnet-research/sngan_projection sngan_projection e84b1a5f604de5fec268f37c3f26478e80b7f475
fetch pfnet-research/chainer-gan-lib chainer-gan-lib cf9efba5b166c07bfd56be1bd4aa9a662dd54bd1
cat > "$SRC/COMMITS" <<COMMITS
improved-gan 4f5d1ec5c16a7eceb206f42bfc652693601e1d5c
Lasagne 5d3c63cb315c50b1cbd27a6bc8664b406f34dd99
sngan_projection e84b1a5f604de5fec268f37c3f26478e80b7f475
chainer-gan-lib cf9efba5b166c07bfd56be1bd4aa9a662dd54bd1
COMMITS
mkdir -p "$ENV/theano-compiledir"
echo "reference environments in $ENV, checkouts in $SRC"
