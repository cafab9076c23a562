{{/* The chart's name (`nameOverride` replaces it). */}}
{{- define "pinip.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of every object: the release name when it already says pinip (so
`helm install pinip` gives the same names as deploy/base), else <release>-pinip.
*/}}
{{- define "pinip.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "pinip.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "pinip.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pinip.serviceAccountName" -}}
{{- default (include "pinip.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Selector labels: immutable on a DaemonSet, so nothing that changes per version. */}}
{{- define "pinip.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pinip.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pinip.labels" -}}
{{ include "pinip.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The pool filter: the values' entries, else the cloud's KubeIP default. */}}
{{- define "pinip.filter" -}}
{{- if .Values.filter -}}
{{- join ";" .Values.filter -}}
{{- else if eq .Values.cloud "aws" -}}
Name=tag:kubeip,Values=reserved
{{- else if eq .Values.cloud "gcp" -}}
labels.kubeip=reserved
{{- else if eq .Values.cloud "oci" -}}
freeformTags.kubeip=reserved
{{- end -}}
{{- end -}}

{{/* The identity annotations of the ServiceAccount for the chosen cloud. */}}
{{- define "pinip.identityAnnotations" -}}
{{- if and (eq .Values.cloud "aws") .Values.identity.aws.roleArn }}
eks.amazonaws.com/role-arn: {{ .Values.identity.aws.roleArn | quote }}
{{- end }}
{{- if and (eq .Values.cloud "gcp") .Values.identity.gcp.serviceAccount }}
iam.gke.io/gcp-service-account: {{ .Values.identity.gcp.serviceAccount | quote }}
{{- end }}
{{- with .Values.serviceAccount.annotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}
