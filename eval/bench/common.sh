# Sourced by the benchmark scripts of this folder: what each of them used to define again.
# die MESSAGE...          print "<script>: MESSAGE" on stderr and exit 2 (a usage error)
# posint OPT VALUE MIN    die unless VALUE is an integer >= MIN
die() { echo "${0##*/}: $*" >&2; exit 2; }
posint() { [[ $2 =~ ^[0-9]+$ ]] && (( $2 >= $3 )) || die "$1 expects an integer >= $3, got '$2'"; }
