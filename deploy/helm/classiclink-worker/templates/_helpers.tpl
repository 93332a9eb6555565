{{/* Names, labels and the checks every template relies on. */}}

{{- define "clw.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-classiclink-worker, or the release name alone when it already contains the chart
name. At most 52 characters: a StatefulSet pod name adds "-<ordinal>" and its controller-revision
label a hash. */}}
{{- define "clw.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "clw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "clw.labels" -}}
{{ include "clw.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: worker
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "clw.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "clw.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* worker.shutdown_timeout_ms in whole seconds, rounded up (the product default is 20000). */}}
{{- define "clw.drainSeconds" -}}
{{- $ms := int (index .Values.config "worker.shutdown_timeout_ms" | default "20000") -}}
{{- div (add $ms 999) 1000 -}}
{{- end -}}

{{/* SIGTERM to SIGKILL: the preStop sleep, the drain, the final commit and flush (5 s each),
and a margin of 10 s; a value given in terminationGracePeriodSeconds must be at least that. */}}
{{- define "clw.gracePeriod" -}}
{{- $need := add (int (include "clw.drainSeconds" .)) 10 (int .Values.preStopSleepSeconds) 10 -}}
{{- $given := int .Values.terminationGracePeriodSeconds -}}
{{- if eq $given 0 -}}
{{- $need -}}
{{- else if lt $given $need -}}
{{- fail (printf "terminationGracePeriodSeconds %d is shorter than the drain needs (%d s: worker.shutdown_timeout_ms, commit and flush, preStopSleepSeconds, margin)" $given $need) -}}
{{- else -}}
{{- $given -}}
{{- end -}}
{{- end -}}

{{- define "clw.maxReplicas" -}}
{{- $max := int .Values.keda.maxReplicaCount -}}
{{- $parts := int .Values.requestsTopicPartitions -}}
{{- if eq $max 0 -}}
{{- $parts -}}
{{- else if gt $max $parts -}}
{{- fail (printf "keda.maxReplicaCount %d is larger than requestsTopicPartitions %d: the extra workers could only idle" $max $parts) -}}
{{- else -}}
{{- $max -}}
{{- end -}}
{{- end -}}

{{/* The settings the chart owns, refused in .Values.config so that they cannot disagree with
the probes, ports and pod names. */}}
{{- define "clw.checkConfig" -}}
{{- range $k := list "metrics.listen" "kafka.consumer.group.instance.id" "kafka.group.instance.id" "kafka.producer.transactional.id" "kafka.transactional.id" -}}
{{- if hasKey $.Values.config $k -}}
{{- fail (printf "config.%s is set by the chart (opsPort, staticMembership, the pod name); remove it from config" $k) -}}
{{- end -}}
{{- end -}}
{{- if and (eq (index .Values.config "delivery.mode" | default "") "exactly_once") (ne .Values.workload "StatefulSet") -}}
{{- fail "delivery.mode=exactly_once needs workload=StatefulSet: the transactional.id is the pod name, which must survive restarts" -}}
{{- end -}}
{{- end -}}
