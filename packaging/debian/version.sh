#!/bin/sh
# Prints the Debian version of the commit checked out, for `make package`:
#   on a tag v1.2.3                     1.2.3 (v1.2.3-rc1: 1.2.3~rc1, before 1.2.3)
#   N commits after it                  1.2.3+git<commit time>.<sha>
#   before the first tag                0.0~git<commit time>.<sha>
# with +dirty (.dirty after a +) when the work tree has uncommitted changes.
# The commit time (UTC, YYYYMMDDhhmmss) orders builds of successive commits.
set -e

sha=$(git rev-parse --short=12 HEAD)
stamp=$(TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd)
if tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null); then
	# Debian sorts ~ before anything, so a pre-release comes before its release.
	base=$(printf '%s\n' "${tag#v}" | sed 's/-/~/g')
	if [ "$(git rev-list --count "$tag..HEAD")" -eq 0 ]; then
		version=$base
	else
		version=$base+git$stamp.$sha
	fi
else
	version=0.0~git$stamp.$sha
fi
git update-index -q --refresh >/dev/null 2>&1 || true
if ! git diff-index --quiet HEAD --; then
	case $version in
	*+*) version=$version.dirty ;;
	*) version=$version+dirty ;;
	esac
fi
printf '%s\n' "$version"
