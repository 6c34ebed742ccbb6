// Stand-in for monis.app/mlog, which the Go module proxy reachable here does
// not serve. The upstream driver v1.6.0 (built only as a test peer) uses five
// of its functions; they are re-implemented over klog with the same
// signatures. Not part of the product.
module monis.app/mlog

go 1.24

require k8s.io/klog/v2 v2.130.1
