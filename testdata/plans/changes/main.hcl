variable "replicas" {
  default = 3
}

resource "builtin_data" "app" {
  input = {
    image    = "nginx:1.27"
    replicas = var.replicas
    labels   = { team = "core", tier = "web" }
  }
}

resource "builtin_data" "pinned" {
  input            = "v1"
  triggers_replace = "2"
}

moved {
  from = builtin_data.old_name
  to   = builtin_data.new_name
}

resource "builtin_data" "new_name" {
  input = "kept"
}

resource "builtin_file" "config" {
  path    = "out/app.conf"
  content = "listen 80\nworkers 4\nlog info\n"
}

output "image" {
  value = builtin_data.app.output.image
}
