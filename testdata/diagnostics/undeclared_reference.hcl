variable "region" {
  default = "eu"
}

resource "builtin_data" "a" {
  input = var.regoin
}

resource "builtin_data" "b" {
  input = builtin_data.aa.output
}
