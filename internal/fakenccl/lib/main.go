// Command lib is internal/fakenccl's test double of libnccl and libcudart,
// built with go build -buildmode=c-shared: one shared library that exports
// the C functions of both (the subset vdpp calls) with their real
// signatures. It is not NCCL and uses no GPU: "device memory" is host
// memory, streams are goroutines and point-to-point transfers go through
// unix sockets. See package internal/fakenccl.
package main

func main() {}
