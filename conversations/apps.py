from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self) -> None:
        from chatsite.users import connect_signals

        connect_signals()  # the user cache (chatsite/users.py): changed users are dropped
