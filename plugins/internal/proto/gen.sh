#!/bin/sh
# Regenerates the Go code for sft.resource.v1.
#   gen.sh            write into the source tree
#   gen.sh OUTDIR     write into OUTDIR (proto-check diffs it against the tree)
# Needs protoc (Debian: apt-get install -y protobuf-compiler) and Go. The Go
# generators are built at pinned versions into a fresh private directory
# (mktemp -d, mode 0700) that is removed on exit: nothing is left behind, and
# no executable anyone else could have planted in a shared path is ever run.
set -eu
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.5.1

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
command -v protoc >/dev/null 2>&1 || { echo "gen.sh: protoc not found (apt-get install -y protobuf-compiler)" >&2; exit 1; }
bin=$(mktemp -d "${TMPDIR:-/tmp}/sft-protobin.XXXXXXXX")
trap 'rm -rf "$bin"' EXIT INT TERM
GOBIN=$bin GOFLAGS=-mod=mod go install google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION
GOBIN=$bin GOFLAGS=-mod=mod go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION
mkdir -p "$out/sftresourcev1"
PATH=$bin:$PATH protoc -I "$here" \
	--plugin=protoc-gen-go="$bin/protoc-gen-go" \
	--plugin=protoc-gen-go-grpc="$bin/protoc-gen-go-grpc" \
	--go_out="$out" --go_opt=paths=source_relative \
	--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
	sftresourcev1/resource.proto
