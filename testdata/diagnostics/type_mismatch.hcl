# flotilla: plan -var replicas=three
variable "replicas" {
  type    = number
  default = 3
}

resource "builtin_data" "a" {
  input = var.replicas
}
