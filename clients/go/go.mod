module barista/clients/go

go 1.19

require github.com/apache/thrift v0.17.0

// Debian's golang-thrift-dev instead of a download: see third_party/thrift/go.mod and README.md.
replace github.com/apache/thrift => ./third_party/thrift
