# A git remote for the tests that follow one: a bare repository at $T/remote.git (URL, as
# file://) and a work tree W whose origin it is, committing as a fixed author with no system
# config. Source after lib.sh.
export GIT_AUTHOR_NAME="Ada Lovelace" GIT_AUTHOR_EMAIL=ada@example.com
export GIT_COMMITTER_NAME="Ada Lovelace" GIT_COMMITTER_EMAIL=ada@example.com GIT_CONFIG_NOSYSTEM=1
W="$T/work"
URL="file://$T/remote.git"
git init -q --bare -b main "$T/remote.git"
git init -q -b main "$W"
git -C "$W" remote add origin "$T/remote.git"
