variable "replicas" {
  default = 2
}

resource "builtin_data" "app" {
  input = {
    image    = "nginx:1.25"
    replicas = var.replicas
    labels   = { team = "core", tier = "web" }
  }
}

resource "builtin_data" "pinned" {
  input            = "v1"
  triggers_replace = "1"
}

resource "builtin_data" "old_name" {
  input = "kept"
}

resource "builtin_data" "retired" {
  input = "bye"
}

resource "builtin_file" "config" {
  path    = "out/app.conf"
  content = "listen 80\nworkers 2\nlog info\n"
}

output "image" {
  value = builtin_data.app.output.image
}
