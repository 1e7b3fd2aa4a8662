{{/* Pieces every engine pod shares: model volume, download init container, GPU resources, probes. */}}

{{- define "st.modelsClaim" -}}
{{- if eq .Values.modelStorage.mode "pvc" -}}
{{- .Values.modelStorage.existingClaim -}}
{{- else if eq .Values.modelStorage.cache.type "pvc" -}}
{{- include "st.name" (list . "models") -}}
{{- end -}}
{{- end -}}

{{/* Volumes of an engine pod: (list $ $shmSize). */}}
{{- define "st.engineVolumes" -}}
{{- $root := index . 0 -}}
{{- $claim := include "st.modelsClaim" $root -}}
- name: models
{{- if $claim }}
  persistentVolumeClaim:
    claimName: {{ $claim }}
    readOnly: {{ eq $root.Values.modelStorage.mode "pvc" }}
{{- else }}
  emptyDir: {}
{{- end }}
- name: shm
  emptyDir: {medium: Memory, sizeLimit: {{ index . 1 }}}
- name: tmp
  emptyDir: {}
{{- end -}}

{{/* The init container that downloads models before the engine starts (download mode only):
(list $ "image key" (list model...)). */}}
{{- define "st.fetchModels" -}}
{{- $root := index . 0 -}}
{{- if eq $root.Values.modelStorage.mode "download" }}
- name: fetch-models
  image: {{ include "st.image" (list $root (index . 1)) }}
  imagePullPolicy: {{ (index $root.Values.images (index . 1)).pullPolicy }}
  command: ["python3", "-m", "storytelling.stack.fetch", "--cache-dir", "/models/huggingface"]
  args: {{ toJson (index . 2) }}
  env:
    - {name: HOME, value: /tmp}
    - {name: HF_HUB_DISABLE_TELEMETRY, value: "1"}
    {{- with $root.Values.modelStorage.hfTokenSecret.name }}
    {{- include "st.secretEnv" (list "HF_TOKEN" $root.Values.modelStorage.hfTokenSecret true) | nindent 4 }}
    {{- end }}
  resources:
    requests: {cpu: 500m, memory: 1Gi}
    limits: {memory: 4Gi}
  securityContext:
    {{- include "st.containerSecurity" . | nindent 4 }}
  volumeMounts:
    - {name: models, mountPath: /models}
    - {name: tmp, mountPath: /tmp}
{{- end }}
{{- end -}}

{{/* Requests and limits of an engine container, with its GPUs on GPU profiles: (list $ $engine $profile). */}}
{{- define "st.engineResources" -}}
{{- $root := index . 0 -}}
{{- $engine := index . 1 -}}
{{- $resources := deepCopy $engine.resources -}}
{{- if and (index . 2).gpu (gt (int $engine.gpus) 0) -}}
{{- $_ := set $resources "requests" (set (default (dict) $resources.requests) $root.Values.gpu.resourceName $engine.gpus) -}}
{{- $_ := set $resources "limits" (set (default (dict) $resources.limits) $root.Values.gpu.resourceName $engine.gpus) -}}
{{- end -}}
{{- toYaml $resources -}}
{{- end -}}

{{/* Scheduling of an engine pod: GPU node selector and tolerations on GPU profiles: (list $ $engine $profile). */}}
{{- define "st.engineScheduling" -}}
{{- $root := index . 0 -}}
{{- if (index . 2).gpu -}}
{{- include "st.scheduling" (list (index . 1) $root.Values.gpu.nodeSelector $root.Values.gpu.tolerations) -}}
{{- else -}}
{{- include "st.scheduling" (list (index . 1) dict list) -}}
{{- end -}}
{{- end -}}

{{/* Startup, readiness and liveness probes on an HTTP health path, with the engine's model-load budget:
(list $engine "/health" "/health"). */}}
{{- define "st.engineProbes" -}}
{{- $engine := index . 0 -}}
startupProbe:
  httpGet: {path: {{ index . 1 }}, port: http}
  periodSeconds: 10
  failureThreshold: {{ div (add $engine.startupBudgetSeconds 9) 10 }}
readinessProbe:
  httpGet: {path: {{ index . 1 }}, port: http}
  periodSeconds: 5
  failureThreshold: 3
livenessProbe:
  httpGet: {path: {{ index . 2 }}, port: http}
  periodSeconds: 15
  timeoutSeconds: 5
  failureThreshold: 4
{{- end -}}

{{- define "st.engineSecurity" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
{{- end -}}
