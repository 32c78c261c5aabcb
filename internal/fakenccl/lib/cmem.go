package main

/*
#include <stdlib.h>
*/
import "C"

import (
	"sync"
	"unsafe"
)

// cmalloc is C memory of n bytes (at least 1): never Go's, so that the
// caller (C, or a Go program with its own runtime) may hold it.
func cmalloc(n uintptr) unsafe.Pointer { return C.malloc(C.size_t(max(n, 1))) }

func cfree(p unsafe.Pointer) { C.free(p) }

// cstring is s as a C string the caller frees with cfree.
func cstring(s string) unsafe.Pointer { return unsafe.Pointer(C.CString(s)) }

var (
	staticMu   sync.Mutex
	staticStrs = map[string]unsafe.Pointer{}
)

// staticString is s as a C string that lives as long as the process.
func staticString(s string) unsafe.Pointer {
	staticMu.Lock()
	defer staticMu.Unlock()
	p, ok := staticStrs[s]
	if !ok {
		p = cstring(s)
		staticStrs[s] = p
	}
	return p
}
