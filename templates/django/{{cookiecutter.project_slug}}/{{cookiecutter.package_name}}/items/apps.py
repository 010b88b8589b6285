from django.apps import AppConfig


class ItemsConfig(AppConfig):
    name = "{{ cookiecutter.package_name }}.items"
    label = "items"
