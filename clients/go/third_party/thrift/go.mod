// A stand-in module for github.com/apache/thrift that offers Debian's copy of its Go library
// (package golang-thrift-dev, version 0.17.0, installed under /usr/share/gocode) through the
// symbolic link lib/go/thrift, so that the sample builds offline. ../../go.mod points here with
// a replace directive; drop that line to use the real module instead.
module github.com/apache/thrift

go 1.19
