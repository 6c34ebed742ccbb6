{{/* Chart name, shortened to a DNS label. */}}
{{- define "sscsi.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name: the release name alone when it already holds the chart name. */}}
{{- define "sscsi.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "sscsi.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount the driver runs as (upstream's fixed name; its RBAC bindings name it). */}}
{{- define "sscsi.serviceAccount" -}}secrets-store-csi-driver{{- end -}}

{{/* Labels on every object; `app` is the DaemonSet selector, as upstream. */}}
{{- define "sscsi.labels" -}}
app: {{ include "sscsi.name" . }}
app.kubernetes.io/name: {{ include "sscsi.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name (.Chart.Version | replace "+" "_") | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* image: repository@digest when a digest is set, else repository:tag. */}}
{{- define "sscsi.image" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%v" .repository .tag -}}
{{- end -}}
{{- end -}}

{{/* A ServiceAccount subject for the driver's bindings. */}}
{{- define "sscsi.subjects" -}}
subjects:
  - kind: ServiceAccount
    name: {{ include "sscsi.serviceAccount" . }}
    namespace: {{ .Release.Namespace }}
{{- end -}}
