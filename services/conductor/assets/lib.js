/* OpenSpending conductor auth client (served by /user/lib).
 *
 * Plain JavaScript, and an AngularJS module `authClient` when angular is loaded:
 *   authenticate.check(next)   -> Promise of /user/check's answer ({authenticated, profile}
 *                                 or {authenticated: false, providers: {name: {url}}})
 *   authenticate.login(url)    -> goes to a provider's login URL
 *   authenticate.logout()      -> forgets the token
 *   authorize.check(service)   -> Promise of /user/authorize's answer ({token, permissions, ...})
 * The user token comes back from the login as `?jwt=` and is kept in localStorage.
 */
(function (root) {
  'use strict';
  var BASE = 'https://openspending.org';
  var KEY = 'os-conductor-jwt';

  function store() {
    try { return root.localStorage; } catch (e) { return null; }
  }

  function tokenFromUrl() {
    var match = /[?&]jwt=([^&#]+)/.exec(root.location ? root.location.search : '');
    if (match) {
      var token = decodeURIComponent(match[1]);
      var s = store();
      if (s) { s.setItem(KEY, token); }
      return token;
    }
    return null;
  }

  function token() {
    var s = store();
    return tokenFromUrl() || (s ? s.getItem(KEY) : null);
  }

  function get(path, params) {
    var query = Object.keys(params).filter(function (k) { return params[k] != null; })
      .map(function (k) { return encodeURIComponent(k) + '=' + encodeURIComponent(params[k]); })
      .join('&');
    return root.fetch(BASE + path + (query ? '?' + query : ''), { credentials: 'include' })
      .then(function (r) { return r.json(); });
  }

  var authenticate = {
    check: function (next) {
      return get('/user/check', { jwt: token(), next: next || (root.location && root.location.href) });
    },
    login: function (url) { root.location.href = url; },
    logout: function () { var s = store(); if (s) { s.removeItem(KEY); } },
    token: token
  };
  var authorize = {
    check: function (service) { return get('/user/authorize', { jwt: token(), service: service }); }
  };

  root.osConductor = { baseUrl: BASE, authenticate: authenticate, authorize: authorize };
  if (root.angular) {
    root.angular.module('authClient', [])
      .factory('authenticate', ['$q', function ($q) {
        return {
          check: function (next) { return $q.when(authenticate.check(next)); },
          login: authenticate.login, logout: authenticate.logout, token: authenticate.token
        };
      }])
      .factory('authorize', ['$q', function ($q) {
        return { check: function (service) { return $q.when(authorize.check(service)); } };
      }]);
  }
})(this);
