// Command upstream-fake-provider serves the upstream driver's own fake
// provider (package sigs.k8s.io/secrets-store-csi-driver/provider/fake,
// v1.6.0) on a unix socket. Every Mount gets the files, object versions and
// error code read from a JSON spec file. It is a test peer only: it proves
// our driver works with a provider built on upstream's Go gRPC stack and
// upstream's generated provider code. (The upstream e2e provider itself is
// a nested Go module that the module proxy here does not serve.)
package main

import (
	"encoding/json"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"sigs.k8s.io/secrets-store-csi-driver/provider/fake"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

type file struct {
	Path     string `json:"path"`
	Mode     int32  `json:"mode"`
	Contents string `json:"contents"`
}

type spec struct {
	Files     []file            `json:"files"`
	Objects   map[string]string `json:"objects"`
	ErrorCode string            `json:"errorCode"`
}

func main() {
	endpoint := flag.String("endpoint", "", "unix socket path to serve on")
	specFile := flag.String("spec", "", "JSON file: {files: [{path, mode, contents}], objects: {id: version}, errorCode}")
	flag.Parse()

	data, err := os.ReadFile(*specFile)
	if err != nil {
		log.Fatalf("reading spec: %v", err)
	}
	var s spec
	if err := json.Unmarshal(data, &s); err != nil {
		log.Fatalf("parsing spec: %v", err)
	}
	srv, err := fake.NewMocKCSIProviderServer(*endpoint)
	if err != nil {
		log.Fatalf("creating server: %v", err)
	}
	files := make([]*v1alpha1.File, 0, len(s.Files))
	for _, f := range s.Files {
		files = append(files, &v1alpha1.File{Path: f.Path, Mode: f.Mode, Contents: []byte(f.Contents)})
	}
	srv.SetFiles(files)
	srv.SetObjects(s.Objects)
	srv.SetProviderErrorCode(s.ErrorCode)
	_ = os.Remove(*endpoint)
	if err := srv.Start(); err != nil {
		log.Fatalf("serving: %v", err)
	}
	log.Printf("serving on %s", *endpoint)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	srv.Stop()
}
