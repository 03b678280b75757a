"""The words of the pages visitors see, in Simplified Chinese and English.

The language comes from the browser's Accept-Language; WeChat's in-app browser
sends ``zh-CN``. Override a template to change the layout, or pass your own
words to it: every page gets the chosen catalog as ``t``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["LANGUAGES", "MESSAGES", "pick_language"]

LANGUAGES: Final = ("zh-CN", "en")

MESSAGES: Final[Mapping[str, Mapping[str, str]]] = {
    "zh-CN": {
        "title": "微信登录",
        "login_failed": "微信登录失败",
        "login_unavailable": "微信登录暂时不可用",
        "bind_failed": "绑定微信失败",
        "bind_unavailable": "暂时无法绑定微信",
        "try_again": "重试",
        "back": "返回",
        "denied": "你没有在微信中授权登录。",
        "denied_bind": "你没有在微信中授权绑定。",
        "snapshot": "请在微信中打开此页面，并点击“使用完整服务”继续。",
        "identity_taken": "这个微信账号已绑定本站的其他用户。",
        "not_member": "你不是本企业的成员，不能用企业微信登录本站。",
        "refused": "本站不允许这个账号登录。如有疑问，请联系管理员。",
        "state": "登录链接已过期，或不是在本站发起的。请重试。",
        "state_bind": "绑定链接已过期，或不是在本站发起的。请重试。",
        "code_blocked": "为保护账号安全，微信拦截了这次登录。请稍后再试。",
        "code_blocked_bind": "为保护账号安全，微信拦截了这次绑定。请稍后再试。",
        "code": "这个微信登录链接已被使用或已过期。请重试。",
        "code_bind": "这个微信绑定链接已被使用或已过期。请重试。",
        "rate_limited": "微信登录请求过多，请一分钟后再试。",
        "rate_limited_bind": "微信请求过多，请一分钟后再试。",
        "flow": "微信登录未能完成。",
        "flow_bind": "微信绑定未能完成。",
        "unavailable": "微信暂时无法完成登录，请稍后再试。",
        "unavailable_bind": "微信暂时无法完成绑定，请稍后再试。",
        "busy": "本站暂时无法完成登录，请稍后再试。",
        "busy_bind": "本站暂时无法完成绑定，请稍后再试。",
        "continue": "继续",
        "cookies": "浏览器没有保留本站的 Cookie，登录无法完成。请允许 Cookie 后重试。",
        "cookies_bind": "浏览器没有保留本站的 Cookie，绑定无法完成。请允许 Cookie 后重试。",
        "logout_heading": "退出登录",
        "logout_button": "退出登录",
        "logout_expired": "退出链接已过期，请再点一次“退出登录”。",
        "qr_heading": "微信扫码登录",
        "qr_hint": "请使用微信扫描二维码登录。",
        "qr_in_wechat": "手机无法扫描自己屏幕上的二维码。请在电脑浏览器中打开本站，再用手机微信扫码登录。",
        "choose_heading": "选择登录方式",
        "choose_qr": "微信扫码登录",
        "choose_qr_hint": "在电脑或其他浏览器上，用手机微信扫码。",
        "choose_oa": "在微信中登录",
        "choose_oa_hint": "已在微信里打开本站时使用。",
        "choose_wecom_web": "企业微信登录",
        "choose_wecom_web_hint": "用企业微信扫码，或在电脑上的企业微信里一键登录。",
        "choose_wecom": "在企业微信中登录",
        "choose_wecom_hint": "已在企业微信里打开本站时使用。",
    },
    "en": {
        "title": "WeChat login",
        "login_failed": "WeChat login failed",
        "login_unavailable": "WeChat login is unavailable right now",
        "bind_failed": "Could not link WeChat",
        "bind_unavailable": "Linking WeChat is unavailable right now",
        "try_again": "Try again",
        "back": "Back",
        "denied": "You did not authorize the login in WeChat.",
        "denied_bind": "You did not authorize linking in WeChat.",
        "snapshot": "Please open this page in WeChat and tap 使用完整服务 (use full service) to continue.",
        "identity_taken": "This WeChat account is already linked to another user of this site.",
        "not_member": "You are not a member of this company, so you cannot log in here with WeCom.",
        "refused": "This account may not log in to this site. Please ask its administrator.",
        "state": "This login link has expired or was not started here. Please try again.",
        "state_bind": "This request to link WeChat has expired or was not started here. Please try again.",
        "code_blocked": "WeChat blocked this login to protect the account. Please try again later.",
        "code_blocked_bind": "WeChat blocked this request to protect the account. Please try again later.",
        "code": "This WeChat login link was already used or has expired. Please try again.",
        "code_bind": "This request to link WeChat was already used or has expired. Please try again.",
        "rate_limited": "WeChat is receiving too many logins right now. Please try again in a minute.",
        "rate_limited_bind": "WeChat is receiving too many requests right now. Please try again in a minute.",
        "flow": "The WeChat login could not be completed.",
        "flow_bind": "Linking WeChat could not be completed.",
        "unavailable": "WeChat could not complete the login right now. Please try again shortly.",
        "unavailable_bind": "WeChat could not link the account right now. Please try again shortly.",
        "busy": "This site could not complete the login right now. Please try again shortly.",
        "busy_bind": "This site could not link WeChat right now. Please try again shortly.",
        "continue": "Continue",
        "cookies": "Your browser did not keep this site's cookie, so the login could not finish. "
        "Please allow cookies and try again.",
        "cookies_bind": "Your browser did not keep this site's cookie, so WeChat could not be linked. "
        "Please allow cookies and try again.",
        "logout_heading": "Log out",
        "logout_button": "Log out",
        "logout_expired": "That logout form has expired. Please press Log out once more.",
        "qr_heading": "Log in with WeChat",
        "qr_hint": "Scan the QR code with WeChat to log in.",
        "qr_in_wechat": "A phone cannot scan a QR code on its own screen. Open this site in a computer's browser "
        "and scan the code there with WeChat.",
        "choose_heading": "How would you like to log in?",
        "choose_qr": "Scan a QR code with WeChat",
        "choose_qr_hint": "On a computer or another browser: scan with WeChat on your phone.",
        "choose_oa": "Log in inside WeChat",
        "choose_oa_hint": "When this site is open in WeChat.",
        "choose_wecom_web": "Log in with WeCom",
        "choose_wecom_web_hint": "Scan with WeCom on your phone, or log in with one click in WeCom on this computer.",
        "choose_wecom": "Log in inside WeCom",
        "choose_wecom_hint": "When this site is open in WeCom.",
    },
}


def pick_language(accept_language: str | None, default: str) -> str:
    """``zh-CN`` for any Chinese (``zh``, ``zh-CN``, ``zh-TW``...), ``en`` for English, else ``default``."""
    best: tuple[float, str] | None = None
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        try:
            quality = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            continue
        primary = tag.strip().lower().split("-")[0]
        language = {"zh": "zh-CN", "en": "en"}.get(primary)
        if language and quality > 0 and (best is None or quality > best[0]):
            best = (quality, language)
    return best[1] if best else default
