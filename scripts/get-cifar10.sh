#!/usr/bin/env bash
# Downloads the official CIFAR-10 binary release (162 MB) where the lab looks for it.
# Usage: scripts/get-cifar10.sh [DIR]   (default DIR: static/data)
set -euo pipefail

dir="${1:-static/data}"
url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
md5="c32a1d4ab5d03f1284b67883e8d87530"
out="$dir/cifar-10-binary.tar.gz"

mkdir -p "$dir"
# Download to a temporary name so an interrupted run never leaves a file that looks complete.
tmp="$out.part"
if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 3 -o "$tmp" "$url"
elif command -v wget >/dev/null 2>&1; then
    wget -O "$tmp" "$url"
else
    echo "error: need curl or wget to download $url" >&2
    exit 1
fi

if command -v md5sum >/dev/null 2>&1; then
    got="$(md5sum "$tmp" | cut -d' ' -f1)"
elif command -v md5 >/dev/null 2>&1; then
    got="$(md5 -q "$tmp")"
else
    echo "error: need md5sum or md5 to check the download" >&2
    exit 1
fi
if [ "$got" != "$md5" ]; then
    echo "error: $tmp has md5 $got, expected $md5 (corrupt or changed download; deleted it)" >&2
    rm -f "$tmp"
    exit 1
fi
mv "$tmp" "$out"

echo "CIFAR-10 saved to $out (md5 ok)."
echo "The CLI finds it with: --data-dir $dir"
