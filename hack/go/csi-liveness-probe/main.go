// Command csi-liveness-probe does what the kubernetes-csi livenessprobe
// sidecar does, with the same library it is built on
// (github.com/kubernetes-csi/csi-lib-utils: connection.Connect,
// rpc.GetDriverName, rpc.Probe): it connects to a CSI socket and answers
// HTTP GET /healthz with 200 when the driver's Probe reports ready, 500
// otherwise. A test peer only: the livenessprobe module itself is not
// served by the Go module proxy this project's machines reach.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/kubernetes-csi/csi-lib-utils/connection"
	"github.com/kubernetes-csi/csi-lib-utils/rpc"
)

func main() {
	csiAddress := flag.String("csi-address", "/run/csi/socket", "CSI endpoint (unix socket path)")
	httpEndpoint := flag.String("http-endpoint", "127.0.0.1:9808", "address to serve /healthz on")
	probeTimeout := flag.Duration("probe-timeout", time.Second, "timeout of one Probe call")
	flag.Parse()

	ctx := context.Background()
	conn, err := connection.ConnectWithoutMetrics(ctx, *csiAddress)
	if err != nil {
		log.Fatalf("connecting to %s: %v", *csiAddress, err)
	}
	name, err := rpc.GetDriverName(ctx, conn)
	if err != nil {
		log.Fatalf("GetPluginInfo: %v", err)
	}
	log.Printf("CSI driver name: %q", name)

	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		pctx, cancel := context.WithTimeout(r.Context(), *probeTimeout)
		defer cancel()
		ready, err := rpc.Probe(pctx, conn)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(err.Error()))
			log.Printf("health check failed: %v", err)
			return
		}
		if !ready {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("driver responded but is not ready"))
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok"))
	})
	log.Printf("serving /healthz on %s", *httpEndpoint)
	log.Fatal(http.ListenAndServe(*httpEndpoint, nil))
}
