{{/* The name of every object the chart creates: the release name, as a DNS label. */}}
{{- define "canaryflow.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "canaryflow.selectorLabels" -}}
app.kubernetes.io/name: canaryflow
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "canaryflow.labels" -}}
{{ include "canaryflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{/* The Secret holding chat webhook URLs given as values (none when only existing Secrets are named). */}}
{{- define "canaryflow.alertsSecret" -}}
{{ include "canaryflow.fullname" . }}-alerts
{{- end -}}

{{/*
Rules for what the operator does inside the namespaces it serves; the same rules go into the ClusterRole (all
namespaces) or into a Role per listed namespace. deploy/rbac/clusterrole.yaml explains each one at length;
tests/deploy keep both equal to what the operator's code (src/canaryflow/kube/runtime.py and its imports) calls.
*/}}
{{- define "canaryflow.namespacedRules" -}}
# Canaries: kopf's watch (list/watch), read by the status store (get), kopf's finalizer and progress
# annotations and the cleared "canaryflow.dev/operation" annotation (patch).
- apiGroups: ["flagger.app"]
  resources: ["canaries"]
  verbs: ["get", "list", "watch", "patch"]
# The Flagger-shaped status, written with a PUT at the resourceVersion read.
- apiGroups: ["flagger.app"]
  resources: ["canaries/status"]
  verbs: ["update"]
# Owned objects name the Canary as controller with blockOwnerDeletion, which needs update on its finalizers.
- apiGroups: ["flagger.app"]
  resources: ["canaries/finalizers"]
  verbs: ["update"]
# Read-only analysis input, kept current in the catalog (list/watch).
- apiGroups: ["flagger.app"]
  resources: ["metrictemplates", "alertproviders"]
  verbs: ["list", "watch"]
# Targets and their -primary copies: read (get), created (create), promoted (update), target scaled (patch).
# Deployments are also kept in the operator's cache (list/watch), so an idle tick reads them from memory.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "update", "patch"]
- apiGroups: ["apps"]
  resources: ["daemonsets"]
  verbs: ["get", "create", "update", "patch"]
# Apex/-primary/-canary Services (also cached: list/watch), tracked ConfigMaps and Secrets and their -primary
# copies, secretRefs: read (get), created when missing (create), rewritten when they differ (update).
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "update"]
- apiGroups: [""]
  resources: ["configmaps", "secrets"]
  verbs: ["get", "create", "update"]
# The primary's HPA, a copy of the target's.
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "create", "update"]
# Istio DestinationRules and the VirtualService whose weights are the canary's traffic; verify reads it back.
# Cached like Deployments (list/watch).
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices", "destinationrules"]
  verbs: ["get", "list", "watch", "create", "update"]
# Events on the Canary: created (create), a repeat found and counted (get/patch), recent ones listed (list).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["get", "list", "create", "patch"]
{{- end -}}
