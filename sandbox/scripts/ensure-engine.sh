#!/usr/bin/env bash
# Make a Docker engine answer: install Debian's docker.io when there is no dockerd,
# start dockerd in the background when none is running. Also make sure debootstrap (the offline
# image build) is installed. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
missing=()
command -v dockerd >/dev/null 2>&1 || docker info >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if docker info >/dev/null 2>&1; then exit 0; fi
mkdir -p /var/log
nohup dockerd >/var/log/codekiln-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "dockerd did not answer within 60 s; see /var/log/codekiln-dockerd.log" >&2
exit 1
