{{/*
The driver's command line. Optional flags, upstream's and ours, are emitted
only when set (ours when they differ from the driver's defaults), so an
upstream values file renders upstream's exact arguments.
*/}}
{{- define "sscsi.driverArgs" -}}
{{- $l := .Values.linux -}}
{{- with .Values.logVerbosity }}
- -v={{ . }}
{{- end }}
{{- if .Values.logFormatJSON }}
- --log-format-json=true
{{- end }}
- --endpoint=$(CSI_ENDPOINT)
- --nodeid=$(KUBE_NODE_NAME)
- --provider-volume={{ $l.providersDir }}
- --additional-provider-volume-paths={{ join "," ($l.additionalProvidersDirs | default list) }}
- --metrics-addr={{ $l.metricsAddr }}
{{- if .Values.enableSecretRotation }}
- --enable-secret-rotation=true
{{- end }}
{{- with .Values.rotationPollInterval }}
- --rotation-poll-interval={{ . }}
{{- end }}
{{- if .Values.providerHealthCheck }}
- --provider-health-check=true
{{- end }}
{{- with .Values.providerHealthCheckInterval }}
- --provider-health-check-interval={{ . }}
{{- end }}
{{- with .Values.maxCallRecvMsgSize }}
- --max-call-recv-msg-size={{ . | int64 }}
{{- end }}
{{- if ne (toString $l.kubeletRootDir) "/var/lib/kubelet" }}
- --kubelet-dir={{ $l.kubeletRootDir }}
{{- end }}
{{- with .Values.providerTimeout }}
- --provider-timeout={{ . }}
{{- end }}
{{- with .Values.minRotationPollInterval }}
- --min-rotation-poll-interval={{ . }}
{{- end }}
{{- with .Values.secretSyncResyncInterval }}
- --secret-sync-resync-interval={{ . }}
{{- end }}
{{- if .Values.enableRefreshLoop }}
{{- if not .Values.enableSecretRotation }}
{{- fail "enableRefreshLoop needs enableSecretRotation: the loop refreshes at most every rotationPollInterval" }}
{{- end }}
- --enable-refresh-loop=true
{{- end }}
{{- range .Values.extraArgs }}
- {{ . }}
{{- end }}
{{- end -}}
