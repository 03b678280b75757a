"""The two baselines flask-wechat is measured against, served like the example app."""
