#!/bin/sh
# Regenerates the Go code for sft.resource.v1.
#   gen.sh            write into the source tree
#   gen.sh OUTDIR     write into OUTDIR (proto-check diffs it against the tree)
# Needs protoc (Debian: apt-get install -y protobuf-compiler) and Go; the Go
# generators are installed at pinned versions into a private bin directory.
set -eu
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.5.1

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
bin=${SFT_PROTO_BIN:-${TMPDIR:-/tmp}/sft-protobin-$PROTOC_GEN_GO_VERSION-$PROTOC_GEN_GO_GRPC_VERSION}
command -v protoc >/dev/null 2>&1 || { echo "gen.sh: protoc not found (apt-get install -y protobuf-compiler)" >&2; exit 1; }
if [ ! -x "$bin/protoc-gen-go" ] || [ ! -x "$bin/protoc-gen-go-grpc" ]; then
	mkdir -p "$bin"
	GOBIN=$bin GOFLAGS=-mod=mod go install google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION
	GOBIN=$bin GOFLAGS=-mod=mod go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION
fi
mkdir -p "$out/sftresourcev1"
PATH=$bin:$PATH protoc -I "$here" \
	--go_out="$out" --go_opt=paths=source_relative \
	--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
	sftresourcev1/resource.proto
