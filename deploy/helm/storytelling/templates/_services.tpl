{{/* What the story, render and evaluation services are told about their engines, from the profile. */}}

{{/* Engine spec (storytelling.llm.EngineSpec) of the storyteller, as a dict: (list $ $profile). */}}
{{- define "st.storytellerSpec" -}}
{{- $root := index . 0 -}}
{{- $p := index . 1 -}}
{{- $s := $p.storyteller -}}
{{- if eq $s.engine "vllm" -}}
kind: openai
base_url: {{ printf "http://%s.%s.svc:8000/v1" (include "st.name" (list $root "storyteller")) $root.Release.Namespace }}
model: {{ $s.servedName }}
discovery: {{ $root.Values.discovery }}
timeout_s: 300
{{- else if eq $s.engine "remote" -}}
kind: openai
base_url: {{ $root.Values.remote.storyteller.baseUrl }}
model: {{ $root.Values.remote.storyteller.model }}
api_key_env: STORYTELLING_REMOTE_STORYTELLER_KEY
timeout_s: 300
{{- else -}}
kind: embedded
{{- with $s.model }}
model: {{ . }}
{{- end }}
{{- with $s.adapter }}
adapter: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* STORYTELLING_STORY_ENGINES: the storyteller, and each LoRA adapter as an engine of its own name. */}}
{{- define "st.storyEngines" -}}
{{- $root := index . 0 -}}
{{- $p := index . 1 -}}
{{- $spec := include "st.storytellerSpec" (list $root $p) | fromYaml -}}
{{- $name := ternary $p.storyteller.servedName $p.storyteller.engine (eq $p.storyteller.engine "vllm") -}}
{{- $engines := dict $name $spec -}}
{{- if eq $p.storyteller.engine "vllm" -}}
{{- range $p.storyteller.loraAdapters -}}
{{- $_ := set $engines .name (merge (dict "model" .name) (omit $spec "model")) -}}
{{- end -}}
{{- end -}}
{{- toJson $engines -}}
{{- end -}}

{{- define "st.judgeSpec" -}}
{{- $root := index . 0 -}}
{{- $p := index . 1 -}}
{{- if eq $p.judge.engine "vllm" -}}
kind: openai
base_url: {{ printf "http://%s.%s.svc:8000/v1" (include "st.name" (list $root "judge")) $root.Release.Namespace }}
model: {{ $p.judge.servedName }}
discovery: {{ $root.Values.discovery }}
timeout_s: 300
{{- else if eq $p.judge.engine "storyteller" -}}
{{- include "st.storytellerSpec" (list $root $p) -}}
{{- else if eq $p.judge.engine "remote" -}}
kind: openai
base_url: {{ $root.Values.remote.judge.baseUrl }}
model: {{ $root.Values.remote.judge.model }}
api_key_env: STORYTELLING_REMOTE_JUDGE_KEY
timeout_s: 300
{{- end -}}
{{- end -}}

{{/* Settings of each service that come from the profile: (list $ $profile "story"|"render"|"evaluation"). */}}
{{- define "st.profileSettings" -}}
{{- $root := index . 0 -}}
{{- $p := index . 1 -}}
{{- $component := index . 2 -}}
{{- $settings := dict -}}
{{- if eq $component "story" -}}
{{- $engines := include "st.storyEngines" (list $root $p) | fromJson -}}
{{- $_ := set $settings "engines" $engines -}}
{{- $_ := set $settings "default_engine" (ternary $p.storyteller.servedName $p.storyteller.engine (eq $p.storyteller.engine "vllm")) -}}
{{- $settings = merge $settings ($p.storySettings | default dict) -}}
{{- else if eq $component "render" -}}
{{- if eq $p.painter.engine "triton" -}}
{{- $_ := set $settings "triton_url" (include "st.target" (list $root "painter" 8001)) -}}
{{- $_ := set $settings "default_painter" "triton" -}}
{{- else if eq $p.painter.engine "remote" -}}
{{- $_ := set $settings "openai_base_url" $root.Values.remote.painter.baseUrl -}}
{{- $_ := set $settings "openai_model" $root.Values.remote.painter.model -}}
{{- $_ := set $settings "default_painter" "openai" -}}
{{- else -}}
{{- $_ := set $settings "default_painter" "sketch" -}}
{{- end -}}
{{- else if eq $component "evaluation" -}}
{{- if and (eq $p.extractor.engine "storyteller") (ne $p.storyteller.engine "embedded") -}}
{{- $_ := set $settings "extractors" (dict "storyteller" (include "st.storytellerSpec" (list $root $p) | fromYaml)) -}}
{{- $_ := set $settings "default_extractor" "storyteller" -}}
{{- end -}}
{{- if ne $p.judge.engine "none" -}}
{{- $_ := set $settings "judges" (dict "judge" (include "st.judgeSpec" (list $root $p) | fromYaml)) -}}
{{- $_ := set $settings "default_judge" "judge" -}}
{{- end -}}
{{- end -}}
{{- toJson $settings -}}
{{- end -}}
