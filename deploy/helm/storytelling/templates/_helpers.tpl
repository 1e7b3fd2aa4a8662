{{/* Names, labels, images and the selected model profile, shared by every template. */}}

{{- define "st.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "st.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: storytelling
{{- end -}}

{{/* Selector labels of one component: (list $ "story"). */}}
{{- define "st.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Every label of one component's objects: (list $ "story" "service"|"engine"). */}}
{{- define "st.componentLabels" -}}
{{ include "st.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
storytelling.dev/role: {{ index . 2 }}
{{- end -}}

{{/* Pod labels: the component's labels plus the user's podLabels. */}}
{{- define "st.podLabels" -}}
{{ include "st.componentLabels" . }}
{{- with (index . 0).Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The image reference of images.<key>: (list $ "services"). */}}
{{- define "st.image" -}}
{{- $root := index . 0 -}}
{{- $image := index $root.Values.images (index . 1) -}}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) -}}
{{- end -}}

{{/* The selected model profile, deploy/profiles/<profile>.yaml (the files the local stack starts; the
chart's profiles/ links there), in the shape the templates use, with `models` overrides merged in, as YAML. */}}
{{- define "st.profile" -}}
{{- $file := printf "profiles/%s.yaml" .Values.profile -}}
{{- $source := .Files.Get $file | fromYaml -}}
{{- if not $source -}}
{{- fail (printf "profile: no profile %q (deploy/profiles/%s.yaml)" .Values.profile .Values.profile) -}}
{{- end -}}
{{- $profile := include "st.clusterProfile" $source | fromYaml -}}
{{- toYaml (mergeOverwrite $profile (deepCopy (.Values.models | default dict))) -}}
{{- end -}}

{{/* A profile file translated for the cluster. Engines: vllm, triton and embedded as they are, openai
becomes remote (URLs and keys from `remote` values), `use: storyteller` becomes engine storyteller (no
pod of its own), an absent role none. Builtin models: SmolLM2 by its hub id (the embedded engine's
default), an embedded adapter as the profile names it (the story service resolves builtin:NAME from its
package), the tiny random painter built at load time (tiny-random); the tiny random judge is built by the
local stack only, so the cluster has no judge for it. The profile's GPU memory plan is the one-GPU workstation's: in the cluster every engine
has its own GPU(s), and its share is engines.<role>.gpuMemoryUtilization. */}}
{{- define "st.clusterProfile" -}}
{{- $builtins := dict "builtin:smollm2-135m-instruct" "HuggingFaceTB/SmolLM2-135M-Instruct" "builtin:tiny-random-sd" "tiny-random" -}}
{{- $engines := dict "openai" "remote" -}}
description: {{ .description | quote }}
gpu: {{ eq .device "cuda" }}
{{- range $role := list "storyteller" "extractor" "judge" }}
{{- $m := index $ $role | default dict }}
{{ $role }}:
{{- if $m.use }}
  engine: {{ $m.use }}
{{- else if or (not $m) (eq ($m.model | default "") "builtin:tiny-random-idefics3") }}
  engine: none
{{- else }}
  engine: {{ index $engines $m.engine | default $m.engine }}
  {{- if eq $m.engine "embedded" }}
  model: {{ ternary "" $m.model (hasPrefix "builtin:" $m.model) | quote }}
  adapter: {{ $m.adapter | default "" | quote }}
  {{- else }}
  model: {{ index $builtins $m.model | default $m.model | quote }}
  {{- end }}
  {{- with $m.revision }}
  revision: {{ . | quote }}
  {{- end }}
  servedName: {{ $m.served_name | default $role | quote }}
  dtype: {{ $m.dtype | default "auto" | quote }}
  maxModelLen: {{ $m.max_model_len | default 4096 }}
  {{- with $m.quantization }}
  quantization: {{ . | quote }}
  {{- end }}
  maxLoraRank: {{ $m.max_lora_rank | default 16 }}
  loraAdapters:
  {{- range $name, $adapter := $m.lora_adapters | default dict }}
    - {name: {{ $name | quote }}, source: {{ $adapter.source | quote }}}
  {{- end }}
  extraArgs: {{ $m.engine_args | default list | toJson }}
{{- end }}
{{- end }}
{{- /* The story service's sampling, prompt mode and cut acceptance: what the file sets (the service's
defaults otherwise), as the local stack passes them. */}}
{{- $teller := .storyteller }}
{{- $story := pick ($teller.sampling | default dict) "temperature" "top_p" "max_tokens" "max_attempts" }}
{{- with $teller.mode }}{{ $_ := set $story "default_mode" . }}{{ end }}
{{- if hasKey $teller "accept_cut" }}{{ $_ := set $story "accept_cut" $teller.accept_cut }}{{ end }}
storySettings: {{ toJson $story }}
{{- $painter := .painter }}
painter:
  engine: {{ index $engines $painter.engine | default $painter.engine }}
  model: {{ index $builtins ($painter.model | default "") | default $painter.model | default "" | quote }}
  steps: {{ $painter.steps | default 25 }}
  guidanceScale: {{ ternary $painter.guidance_scale 7.5 (hasKey $painter "guidance_scale") }}
  width: {{ $painter.width | default 512 }}
  height: {{ $painter.height | default 512 }}
  scheduler: {{ $painter.scheduler | default "" | quote }}
  dtype: {{ $painter.dtype | default "auto" | quote }}
  variant: {{ $painter.variant | default "" | quote }}
{{- end -}}

{{/* Which engine pods the profile needs: a dict of storyteller/judge/painter -> bool. */}}
{{- define "st.engines" -}}
{{- $p := include "st.profile" . | fromYaml -}}
storyteller: {{ eq $p.storyteller.engine "vllm" }}
judge: {{ eq $p.judge.engine "vllm" }}
painter: {{ eq $p.painter.engine "triton" }}
{{- end -}}

{{/* Kubernetes object names of the components. */}}
{{- define "st.name" -}}
{{- printf "%s-%s" (include "st.fullname" (index . 0)) (index . 1) -}}
{{- end -}}

{{/* A target the services resolve: (list $ "story" 50051). */}}
{{- define "st.target" -}}
{{- $root := index . 0 -}}
{{- $name := include "st.name" (list $root (index . 1)) -}}
{{- if eq $root.Values.discovery "kubernetes" -}}
{{- printf "kubernetes:///%s.%s:%v" $name $root.Release.Namespace (index . 2) -}}
{{- else -}}
{{- printf "dns:///%s.%s.svc:%v" $name $root.Release.Namespace (index . 2) -}}
{{- end -}}
{{- end -}}

{{/* STORYTELLING_<SERVICE>_<FIELD> variables from a settings map: (list "STORY" $settings). Lists and maps
become JSON, as the services read structured settings. */}}
{{- define "st.settingsEnv" -}}
{{- $prefix := index . 0 -}}
{{- range $field, $value := index . 1 }}
- name: {{ printf "STORYTELLING_%s_%s" $prefix ($field | upper) }}
  value: {{ if or (kindIs "map" $value) (kindIs "slice" $value) }}{{ toJson $value | quote }}{{ else }}{{ toString $value | quote }}{{ end }}
{{- end }}
{{- end -}}

{{/* Pod security every container runs with: non-root, no privilege escalation, no capabilities. */}}
{{- define "st.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "st.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* A Secret reference as an env var source: (list "NAME" $secretRef optional). */}}
{{- define "st.secretEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ (index . 1).name }}
      key: {{ (index . 1).key }}
      optional: {{ index . 2 }}
{{- end -}}

{{/* Scheduling of a pod: (list $component $extraNodeSelector $extraTolerations). */}}
{{- define "st.scheduling" -}}
{{- $component := index . 0 -}}
{{- $nodeSelector := mergeOverwrite (deepCopy (index . 1)) (deepCopy ($component.nodeSelector | default dict)) -}}
{{- $tolerations := concat (index . 2) ($component.tolerations | default list) -}}
{{- with $nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $component.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Checks across values that the schema cannot express; each failure names the field. */}}
{{- define "st.validate" -}}
{{- $p := include "st.profile" . | fromYaml -}}
{{- range $role := list "storyteller" "judge" "painter" -}}
{{- if eq (index $p $role).engine "remote" -}}
{{- $remote := index $.Values.remote $role -}}
{{- if not $remote.baseUrl -}}
{{- fail (printf "remote.%s.baseUrl: required, the %s engine of profile %q is remote" $role $role $.Values.profile) -}}
{{- end -}}
{{- if not $remote.model -}}
{{- fail (printf "remote.%s.model: required, the %s engine of profile %q is remote" $role $role $.Values.profile) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $p.storyteller.loraAdapters (ne $p.storyteller.engine "vllm") -}}
{{- fail "models.storyteller.loraAdapters: LoRA adapters need the vllm storyteller engine" -}}
{{- end -}}
{{- range $role := list "storyteller" "judge" "painter" -}}
{{- $scale := index $.Values.autoscaling $role -}}
{{- if lt (int $scale.maxReplicas) (int $scale.minReplicas) -}}
{{- fail (printf "autoscaling.%s.maxReplicas: %v is below minReplicas %v" $role $scale.maxReplicas $scale.minReplicas) -}}
{{- end -}}
{{- end -}}
{{- end -}}
