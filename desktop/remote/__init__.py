"""The host's side of remote work (issue 23): the user's list of OpenAI-compatible servers
(:mod:`desktop.remote.servers`) and a batch spread over several of them (:mod:`desktop.remote.spread`). The
generators that talk to servers are a plugin (``plugins/remote``); serving this engine is :mod:`desktop.serve`."""
