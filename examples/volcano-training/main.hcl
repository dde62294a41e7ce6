# A Volcano queue for training jobs and one job in it, in one apply: the job waits for the
# queue to be Open, as Volcano's admission webhook requires.

provider "volcano" {
  sandbox = "gpu"
}

provider "kube" {
  sandbox = "gpu"
}

resource "volcano_queue" "training" {
  name = "training"
  spec = {
    weight     = 2
    capability = { cpu = "64" }
  }
}

resource "kube_namespace" "ml" {
  name = "ml"
}

resource "volcano_job" "train" {
  name      = "train"
  namespace = kube_namespace.ml.name
  spec = {
    queue        = volcano_queue.training.name
    minAvailable = 1
    tasks = [{
      name     = "worker"
      replicas = 2
      template = {
        spec = {
          restartPolicy = "OnFailure"
          containers    = [{ name = "train", image = "pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime", command = ["python", "train.py"] }]
        }
      }
    }]
  }
}

output "queue" {
  value = volcano_queue.training.name
}
