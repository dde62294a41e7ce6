variable "name" {
  type        = string
  description = "The fleet's name (the block's label unless set)."
}

variable "clusters" {
  type        = any
  description = "The clusters that may be members: a list of cluster blocks (`[cluster.beijing, cluster.shanghai]`), or a map of them (`cluster.site` with `for_each`)."
}

variable "selector" {
  type        = map(string)
  default     = {}
  description = "Only the clusters whose labels have every one of these (empty: all of them)."
}

variable "control_plane" {
  type        = any
  default     = null
  description = "A Karmada control plane (a cluster block): every member is joined to it, and policies propagate through it."
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Labels every member gets in Karmada, besides its own."
}

variable "flux" {
  type        = bool
  default     = true
  description = "Install Flux's source and Helm controllers on every member (addons are Flux HelmReleases)."
}

variable "flux_version" {
  type        = string
  default     = "v1.4.0"
  description = "The source-controller image tag; helm-controller follows `helm_controller_version`."
}

variable "helm_controller_version" {
  type        = string
  default     = "v1.1.0"
  description = "The helm-controller image tag."
}
